"""The storage planner: disks between datastores by Storage vMotion (Storage DRS)."""
