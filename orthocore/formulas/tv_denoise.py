"""The constant of Chambolle's TV iteration that every ``tv_denoise`` backend uses."""

TAU = 0.25  # skimage's step 1/(2·ndim) for 2-D planes
