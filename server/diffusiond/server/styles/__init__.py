"""Prompt styles: A1111-compatible templates, stored in the database, imported and exported as styles.csv."""
