"""Makes prompts/ the package ``bot.prompt_files`` once installed (pyproject.toml), so the bot reads
these templates through importlib.resources from any folder. The .txt files are what to edit."""
