"""Ground floor: the error types, file access that never blocks, option fields, locks and exit statuses.

Everything above may import from here; nothing here imports another layer of nst_tf.
"""
