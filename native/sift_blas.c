/*
 * sgemm on TensorFlow.js wasm tensors, in place: the wasm backend keeps every
 * tensor in its WebAssembly memory, so a matMul can run on those bytes with
 * the machine's own BLAS (OpenBLAS, Accelerate) instead of wasm SIMD.
 * JavaScript passes the memory's ArrayBuffer and byte offsets; nothing is copied.
 */
#include <node_api.h>
#include <stdint.h>
#ifdef SIFT_ACCELERATE
#include <Accelerate/Accelerate.h>
#define SIFT_BLAS_NAME "Accelerate"
#else
#include <cblas.h>
#define SIFT_BLAS_NAME "OpenBLAS"
void openblas_set_num_threads(int);
#endif

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, NULL, "sift_blas: bad arguments to sgemm");  \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

/* sgemm(memory, aOffset, bOffset, outOffset, batch, m, n, k, transposeA, transposeB):
 * out[b] = op(a[b]) · op(b[b]) for each of `batch` row-major matrices, a [m,k] (or [k,m]), b [k,n] (or [n,k]). */
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value args[10];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc != 10) {
    napi_throw_error(env, NULL, "sift_blas: sgemm takes 10 arguments");
    return NULL;
  }
  void *memory;
  size_t length;
  CHECK(napi_get_arraybuffer_info(env, args[0], &memory, &length));
  int64_t a, b, out;
  int32_t batch, m, n, k;
  bool transposeA, transposeB;
  CHECK(napi_get_value_int64(env, args[1], &a));
  CHECK(napi_get_value_int64(env, args[2], &b));
  CHECK(napi_get_value_int64(env, args[3], &out));
  CHECK(napi_get_value_int32(env, args[4], &batch));
  CHECK(napi_get_value_int32(env, args[5], &m));
  CHECK(napi_get_value_int32(env, args[6], &n));
  CHECK(napi_get_value_int32(env, args[7], &k));
  CHECK(napi_get_value_bool(env, args[8], &transposeA));
  CHECK(napi_get_value_bool(env, args[9], &transposeB));
  const int64_t floats = (int64_t)length / 4;
  const int64_t aSize = (int64_t)m * k, bSize = (int64_t)k * n, outSize = (int64_t)m * n;
  if (a < 0 || b < 0 || out < 0 || batch < 0 || m < 0 || n < 0 || k < 0 || a % 4 || b % 4 || out % 4 ||
      a / 4 + batch * aSize > floats || b / 4 + batch * bSize > floats || out / 4 + batch * outSize > floats) {
    napi_throw_range_error(env, NULL, "sift_blas: sgemm operands lie outside the memory");
    return NULL;
  }
  float *base = (float *)memory;
  for (int32_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                base + a / 4 + i * aSize, transposeA ? m : k, base + b / 4 + i * bSize, transposeB ? k : n, 0.0f,
                base + out / 4 + i * outSize, n);
  }
  return NULL;
}

/* setThreads(n): threads the BLAS may use for one call. Sift parallelises
 * across its own replica threads, so each of them asks for 1. */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t threads;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &threads));
#ifndef SIFT_ACCELERATE
  openblas_set_num_threads(threads < 1 ? 1 : threads);
#endif
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value sgemm, setThreads, name;
  if (napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, NULL, &sgemm) != napi_ok) return NULL;
  if (napi_create_function(env, "setThreads", NAPI_AUTO_LENGTH, SetThreads, NULL, &setThreads) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, SIFT_BLAS_NAME, NAPI_AUTO_LENGTH, &name) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sgemm", sgemm) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "setThreads", setThreads) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "blas", name) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
