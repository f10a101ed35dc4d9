"""Clients for the outside services actions use, one module each; they never touch the database."""
