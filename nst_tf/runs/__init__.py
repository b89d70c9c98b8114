"""Runs built on the loop: coarse to fine, many images, video frames, and the named presets."""
