"""Stand-ins for what is outside this machine's reach, each speaking the real wire protocol."""
