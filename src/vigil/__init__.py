"""vigil: learn how each customer, card, account, terminal and device behaves; decide on events."""

__version__ = "0.1.0"
