"""The application catalog: templates and their versions (loader.py is the one module that reads a directory),
questions and answers, Go-template rendering under budgets, and upgrade offers; the rest is pure over texts."""
