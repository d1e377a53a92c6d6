"""Training: from the mug photos to the servable model directory the service loads."""

import os

# Set before TensorFlow is first imported: keeps its C++ start-up chatter off the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
