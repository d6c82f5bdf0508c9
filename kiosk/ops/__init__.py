"""Running a centre machine: console scripts, systemd units, health checks and logging."""
