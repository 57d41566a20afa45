#include <cblas.h>
// OpenBLAS extensions: its own thread pool size (DESIGN.md §5: coordinate with ours).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
