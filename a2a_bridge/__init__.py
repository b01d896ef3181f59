"""A2A surface of the handoff bots: the agent card, the HandoffMessage contract, the peer client and
the executor that receives handoffs. It knows nothing of Teams; what it needs from the bot (open a
1:1 chat and greet) comes in as the small ``GreetingDelivery`` protocol."""
