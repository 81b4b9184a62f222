"""Cascade simulator (issue 12): a population of accounts on the live book, an exogenous shock
or a real price path, and rounds of re-margining, liquidation, impact and re-marking."""
