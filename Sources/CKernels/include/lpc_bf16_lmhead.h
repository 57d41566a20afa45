#ifndef LPC_BF16_LMHEAD_H
#define LPC_BF16_LMHEAD_H
#include <stdint.h>

/// The frozen LM head of LPC training in bfloat16 with float32 accumulation (AMX tiles), fused
/// with the log-softmax the way flash attention fuses its softmax: per block of rows, the
/// vocabulary is walked in blocks of LPC_BF16_VOCAB_BLOCK; each block's logits S = H·Wᵀ are made
/// by AMX, folded into an online max / sum of exponentials, turned into bf16 weights
/// P = exp(S − running max) and accumulated into M += P·W (AMX) with the usual rescaling. The
/// [rows, vocab] logits never reach memory; FLOPs are those of the fp32 path (4·d·vocab per row).
///
/// Numerics (what the reference twin reproduces): H and W are rounded to bf16 (round to nearest
/// even), products are accumulated in float32; P is rounded to bf16 before P·W, the sums of
/// exponentials are float32 from the unrounded P.

#define LPC_BF16_VOCAB_BLOCK 256
#define LPC_BF16_ROW_BLOCK 384

/// 1 when this CPU and OS can run the AMX path (AMX-TILE, AMX-BF16, AVX512-BF16, XCR0 tile
/// state and, on Linux, arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) granted). Asks for the
/// permission once per process; thread-safe.
int lpc_amx_bf16_available(void);

/// W [vocab, d] float32 packed once into bf16 AMX tile layouts (two copies: one for S = H·Wᵀ,
/// one for M = P·W): about 4·vocab·d bytes. Read-only after creation, so one head can serve
/// several threads at once.
typedef struct lpc_bf16_head lpc_bf16_head;

/// NULL when AMX is unavailable, a size is not positive, or memory runs out.
lpc_bf16_head *lpc_bf16_head_create(const float *w, int64_t vocab, int64_t d);
void lpc_bf16_head_destroy(lpc_bf16_head *head);

/// For rows t < rows of hidden [rows, d]:
///   logp[t] = log softmax(hidden_t·Wᵀ)[ids[t]]
///   expected[t, :] = softmax(hidden_t·Wᵀ)·W   (when expected is not NULL; [rows, d])
/// Returns 0, or −1 when an id is outside [0, vocab) (nothing is then guaranteed about the
/// outputs), or −2 when scratch memory cannot be allocated. Uses the calling thread only: split
/// the rows across threads to parallelise.
int lpc_bf16_head_token_logprobs(const lpc_bf16_head *head, const float *hidden, const int32_t *ids,
                                 int64_t rows, float *logp, float *expected);

/// Reference twin (scalar, one thread, double sums): the same bf16 roundings of H and W, an
/// exact softmax, P unrounded. Returns −1 on a bad id.
int lpc_bf16_head_token_logprobs_reference(const float *w, int64_t vocab, int64_t d, const float *hidden,
                                           const int32_t *ids, int64_t rows, float *logp, float *expected);

/// Round-to-nearest-even float32 → bfloat16 bits (NaN stays NaN), and back.
uint16_t lpc_f32_to_bf16(float x);
float lpc_bf16_to_f32(uint16_t b);

#endif
