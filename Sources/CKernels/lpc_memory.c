#include "lpc_memory.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int lpc_retain_freed_heap(void) {
#if defined(__GLIBC__)
    int a = mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's largest accepted threshold
    int b = mallopt(M_TRIM_THRESHOLD, 256 << 20);
    return a == 1 && b == 1;
#else
    return 0;
#endif
}
