"""Test set-up shared by every test module.

Eight fake CPU devices let mesh tests run anywhere; the flag must be set
before jax is first imported. TensorFlow (the data pipeline) must not grab
GPU memory that jax needs.
"""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # libtpu (tpu extra): no probe.

import tensorflow as tf  # pylint: disable=g-import-not-at-top

tf.config.set_visible_devices([], "GPU")
