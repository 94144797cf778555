"""The organization hub: what member stacks forward, stored per (account, region, group)."""
