"""Customer value: who is still alive, what each customer is worth, who is slipping away.

Probabilistic models of repeat buying (BG/NBD, Pareto/NBD, Gamma-Gamma) for non-contractual
customers, and survival curves (Kaplan-Meier, shifted-beta-geometric) for subscriptions.
"""
