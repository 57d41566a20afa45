#ifndef LPC_MEMORY_H
#define LPC_MEMORY_H

/// glibc: serve blocks up to 32 MiB from the heap and keep up to 256 MiB of freed heap top
/// (mallopt M_MMAP_THRESHOLD / M_TRIM_THRESHOLD), so per-op tensors reuse memory instead of
/// page-faulting fresh mmaps in on every run. Returns 1 if both settings were accepted, 0 if
/// not (or not glibc).
int lpc_retain_freed_heap(void);

#endif
