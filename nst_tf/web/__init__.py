"""A local web page for style transfer: ``python -m nst_tf.web`` (``pip install "nst_tf[web]"``).

Upload a photo and one or more paintings (or take the bundled ones), choose a preset and the run's settings,
watch the picture form, stop, download. Built on the library (``runs.presets``, ``jobs.build``,
``StyleTransfer``'s reports and ticks, ``save_image``'s atomic saving); aiohttp serves the page, its script and
its style sheet itself and sends each run's state as server-sent events. Modules: ``settings`` (the form's
fields checked), ``uploads`` (uploads bounded and checked as images), ``worker`` (the queue and the one thread
that runs it), ``routes`` (the HTTP handlers), ``serve`` (binding, signals and a clean stop), ``__main__``
(the command).
"""
