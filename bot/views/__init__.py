"""Persistent message components (DynamicItem): their custom_id holds the job's key."""
