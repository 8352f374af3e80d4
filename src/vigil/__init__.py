"""vigil: learn how each customer, card, account, terminal and device behaves; decide on every new event."""

__version__ = "0.1.0"
