"""The row shapes every per-row fused op is tested on: each one a case a kernel's
indexing gets wrong first."""

ROW_SHAPES = [
    (1, 1),  # minimal
    (3, 7),  # primes
    (257, 1023),  # batch past 256, row below a power of two
    (64, 3, 32, 32),  # a CIFAR batch
    (5, 3, 17, 19),  # odd image
    (2, 3, 224, 224),  # ImageNet-sized rows: many blocks, more than one split per row
]
