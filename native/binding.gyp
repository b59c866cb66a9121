{
  "targets": [
    {
      "target_name": "sift_blas",
      "sources": ["sift_blas.c"],
      "cflags": ["-O3", "-ffast-math"],
      "conditions": [
        ["OS=='mac'", {
          "defines": ["SIFT_ACCELERATE"],
          "libraries": ["-framework Accelerate"]
        }],
        ["OS=='linux'", {
          "include_dirs": ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/aarch64-linux-gnu/openblas-pthread", "/usr/include/openblas"],
          "libraries": ["-lopenblas"]
        }]
      ]
    }
  ]
}
