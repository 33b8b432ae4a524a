"""Voice of the customer: one corpus of what customers write, its sentiment and themes, their
trends, and the drivers of satisfaction (issue 5)."""
