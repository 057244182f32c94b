"""Generation history: every job that produced images, with its files under the outputs folder."""
