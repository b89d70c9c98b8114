"""Training fast style models: ``python -m nst_tf.train --style starry.jpg --content_dir photos/ --output_dir
model/`` (the command is ``nst_tf.app.train_cli``; the library's pieces are ``nst_tf.runs.training_run`` and
``nst_tf.runs.training_data``)."""
