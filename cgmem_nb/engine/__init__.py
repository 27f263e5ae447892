"""The engine: tracers that see allocations, probes that read the process, the monitor thread, events and pressure."""
