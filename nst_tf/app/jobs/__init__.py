"""Jobs: what the command runs (one image, several images, a video; see ``kinds``), from shared pieces.

Nothing here imports TensorFlow until a job runs, so that bad input is refused quickly; jobs write only to the
streams they are given.
"""
