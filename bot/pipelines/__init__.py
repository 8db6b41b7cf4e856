"""From parsed options to finished files: the work shared by slash commands and the CLI."""
