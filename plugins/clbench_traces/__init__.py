"""clbench built-in plugin: records memory traces (read/write weightings, usage) of memory models."""
