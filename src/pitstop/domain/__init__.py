"""Pure domain: values in, values out. No I/O, no clock reads, no globals that change."""
