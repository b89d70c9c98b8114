"""The objective of a run as one object: ``StyleCost``.

It owns the network in its precision, the content target, each style image's Gram matrices and blend
weight, the styles' colour handling and the total-variation term. Called on an image it returns its
costs by name, ``{"total": J, "content": J_content, "style": J_style, "tv": J_tv, ...}`` (one entry
per term, ``terms.py``), which the loop and everything that reports a run carry as they are.
"""

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.config import StyleTransferConfig
from ..plan.masks import GuidedContent, GuidedStyle, fit_mask, guided_layers, mask_at_layer
from ..plan.networks.network_registry import get_network
from ..tensors.colors import present, recolor_styles
from ..tensors.costs import style_gram
from ..tensors.images import checked_float32_batch, deprocess_image, pixel_range
from ..tensors.precision import compute_dtype
from .terms import ContentTerm, GuidedStyleTerm, Shapes, StyleTerm, TotalVariationTerm, Window


class StyleCost(tf.Module):
    """The course's cost, ``alpha * J_content + beta * J_style``, plus total variation: a sum of terms.

    Args:
        model: a network module (``VGG19``), or any callable ``model(image, layers=[...]) -> {name: activation}``
            with a ``dtype`` and, for a precision other than its own, ``astype(dtype)``.
        content_image: normalized content image, shape (1, H, W, 3), or a ``GuidedContent`` of it (the content
            cost weighted by its mask).
        style_image: normalized style image (1, h, w, 3), or a list of them blended with
            ``config.style_blend_weights``; sizes may differ from the content's. ``GuidedStyle``s (styles by
            region, with layers of their own) bring the ``GuidedStyleTerm`` in the place of the ``StyleTerm``.
        config: a ``StyleTransferConfig`` (its cost, precision, colour and clipping fields).
        extra_terms: image terms (``terms.py``, e.g. a ``TemporalTerm``) added to the sum after the
            config's; each is reported under its ``name``.
        plan: kept as ``self.plan`` for a subclass's target hooks (``TiledStyleCost``'s ``TilePlan``).

    Called on an image (1, H, W, 3) it returns float32 scalars ``{"total": J, "content": J_content,
    "style": J_style}``, then ``"tv"`` when ``tv_weight`` is not 0 and each extra term's, with
    ``J = alpha * J_content + beta * J_style + tv_weight * J_tv + ...`` and ``J_style = sum_s blend_s *
    sum_l weight_l * style cost of layer l``; ``terms`` holds the terms in that order. Activations are
    cast to float32 before Gram matrices and costs (float16 Gram sums overflow, bfloat16 ones lose
    three digits).

    Raises:
        NSTError: a config that is not a ``StyleTransferConfig``, a model that is not callable, images of the
            wrong shape or values, no style image, or a blend weight count that does not match.
    """

    def __init__(
        self,
        model,
        content_image,
        style_image,
        config=StyleTransferConfig(),
        name="style_cost",
        *,
        plan=None,
        extra_terms=(),
    ):
        super().__init__(name=name)
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        self.config = config
        self.plan = plan
        self._extra_terms = _image_terms(extra_terms)
        self.model = _in_precision(model, config.precision)
        guide = content_image if isinstance(content_image, GuidedContent) else None
        self.content_image = checked_float32_batch(getattr(guide, "image", content_image), "content_image")
        styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
        if not styles:
            raise NSTError("style_image: give at least one style image")
        # A GuidedStyle (styles by region) brings the guided style term instead of the course's.
        self._guides = [style for style in styles if isinstance(style, GuidedStyle)]
        if self._guides and len(self._guides) != len(styles):
            self._guides = [s if isinstance(s, GuidedStyle) else GuidedStyle(s) for s in styles]
        styles = [checked_float32_batch(getattr(style, "image", style), "style_image") for style in styles]
        self.blend_weights = config.blend_weights(len(styles))
        self._styles = styles  # as given: retarget recolours them again for another content image
        styles = recolor_styles(config.preserve_colors, styles, self.content_image)

        self._pixel_range = [tf.constant(bound, tf.float32) for bound in pixel_range(config.normalization)]
        self.content_layer = config.content_layer
        self.style_layers = config.style_layers
        self._recolored = styles
        own_layers = self._guides and all(guide.layers is not None for guide in self._guides)
        style_names = [name for name, _ in self.style_layers] if not own_layers else []
        style_names = list(dict.fromkeys(style_names + guided_layers(self._guides)))
        self._layers = list(dict.fromkeys([self.content_layer, *style_names]))
        with self.name_scope:
            # Variables, not captured constants: a traced loop reads them where they live, not copies in its graph.
            self.content_target = tf.Variable(
                self._content_activation(self.content_image), trainable=False, name="content_target"
            )
            self.style_grams = []
            for i, style in enumerate(styles if not self._guides else ()):
                grams = self._style_grams(style, style_names)
                self.style_grams.append(
                    {
                        layer: tf.Variable(grams[layer], trainable=False, name=f"gram_{i}_{layer}")
                        for layer in style_names
                    }
                )
        self._content_mask = None if guide is None else self._mask_at(guide, self.content_layer)
        self.terms = self._make_terms()

    def _mask_at(self, guide, layer):
        """A ``GuidedContent``'s mask fitted to the content image and brought to ``layer``, (1, n_H, n_W, 1)."""
        network, pooling = self._geometry()
        mask = fit_mask(guide.mask, *self.content_image.shape[1:3])
        return tf.constant(mask_at_layer(mask, network, layer, pooling, guide.erode)[None, :, :, None])

    def retarget(self, content_image):
        """Makes this objective the one of another content image of the same shape, without retracing: the
        content target (and, with ``preserve_colors="histogram"``, the style targets) are assigned to their
        variables. ``NSTError`` unless ``content_image`` is a normalized image of the content's shape."""
        content_image = checked_float32_batch(content_image, "content_image")
        if content_image.shape != self.content_image.shape:
            raise NSTError(
                f"content_image has shape {content_image.shape}; this objective is for {self.content_image.shape}"
            )
        self.content_image = content_image
        self.content_target.assign(self._content_activation(content_image))
        if self.config.preserve_colors == "histogram":
            styles = recolor_styles(self.config.preserve_colors, self._styles, content_image)
            if self._guides:  # the guided targets of the recoloured styles, into the term's variables
                self._recolored = styles
                for old, new in zip(self.terms[1].styles, self._style_term().styles):
                    for layer, variable in old.targets.items():
                        variable.assign(new.targets[layer])
            names = [name for name, _ in self.style_layers]
            for variables, style in zip(self.style_grams, styles):
                grams = self._style_grams(style, names)
                for layer, variable in variables.items():
                    variable.assign(grams[layer])

    def _make_terms(self):
        config = self.config
        terms = [self._content_term(self.content_target), self._style_term()]
        if config.tv_weight:
            terms.append(TotalVariationTerm(config.tv_form, config.tv_weight))
        return terms + self._extra_terms

    def _style_term(self):
        """The course's ``StyleTerm``, or with ``GuidedStyle``s the ``GuidedStyleTerm`` of their regions."""
        config = self.config
        if not self._guides:
            return StyleTerm(
                self.style_layers, self.style_grams, self.blend_weights, config.style_normalizer, config.beta
            )
        guides = [guide.with_image(style) for guide, style in zip(self._guides, self._recolored)]
        size = tuple(self.content_image.shape[1:3])
        return GuidedStyleTerm.build(guides, self.measure, self._geometry(), size, config)

    def _geometry(self):
        """(``Network``, pooling) of the model: where each layer's positions lie, for masks."""
        network = getattr(self.model, "network", None) or get_network(self.config.network)
        return network, getattr(self.model, "pooling", None) or network.poolings[0]

    def measure(self, image, layers, sums):
        """``sums(activations, window)`` of a whole ``image``'s float32 activations at ``layers``: a network
        term's sums of another image (a style's targets); ``TiledStyleCost`` adds them up over tiles."""
        return sums(self.activations(image, layers), Window())

    def _network(self, image, layers, **options):
        # nst_tf's networks take RGB (Keras' BGR first layer is reversed on reading); the second edition feeds
        # RGB [0, 1] pixels to Keras' BGR layer as they are, so "unit" reverses them to give its activations.
        if self.config.normalization == "unit":
            image = tf.reverse(image, axis=[-1])
        activations = self.model(image, layers=layers, **options)
        missing = [layer for layer in layers if not isinstance(activations, dict) or layer not in activations]
        if missing:
            raise NSTError(
                f"the model gave no activation for layer {missing[0]!r}; it must return "
                "{layer name: activation} for every layer asked"
            )
        return activations

    @staticmethod
    def _float32(activations):
        return {name: tf.cast(a, tf.float32) for name, a in activations.items()}

    def _content_activation(self, image):
        """float32 activation of ``image`` at the content layer; with ``_style_grams``, a subclass's hook."""
        return self._float32(self._network(image, [self.content_layer]))[self.content_layer]

    def _style_grams(self, image, layers):
        """``{layer: style target of image's float32 activation}`` for ``layers`` (see ``_style_target``)."""
        activations = self._float32(self._network(image, layers))
        return {layer: self._style_target(style_gram(a), a.shape[1] * a.shape[2]) for layer, a in activations.items()}

    def _style_target(self, gram, positions):
        """A style image's Gram matrix as its ``StyleTerm`` compares it: divided by its own ``positions * n_C``
        with the "gram" normalizer (CS231n's ``gram_matrix(normalize=True)``), else as it is."""
        if self.config.style_normalizer != "gram":
            return gram
        return gram / (float(positions) * float(gram.shape[-1]))

    def _network_terms(self):
        return [term for term in self.terms if term.layers]

    def _check(self, image):
        """``image`` as a float32 tensor (a variable as it is); ``NSTError`` unless shaped as the content image."""
        if not isinstance(image, tf.Variable):
            image = tf.convert_to_tensor(image, tf.float32)
        if not image.shape.is_compatible_with(self.content_image.shape):
            raise NSTError(
                f"image has shape {image.shape}; this {type(self).__name__} is for {self.content_image.shape}, "
                "the content image's"
            )
        return image

    def __call__(self, image):
        """The costs of ``image`` (shape (1, H, W, 3)) by name, ``{"total": J, term name: value}``, float32 scalars."""
        image = self._check(image)
        return self.image_costs(image, self.activations(image))

    def activations(self, images, layers=None):
        """float32 activations of ``images`` (a batch, (B, H, W, 3)) at ``layers`` (default: the terms')."""
        return self._float32(self._network(images, self._layers if layers is None else list(layers)))

    def image_costs(self, image, activations, content_target=None):
        """The costs by name of one image (1, H, W, 3) from its float32 ``activations``; ``content_target``: the
        content activation to compare with, when not this objective's (``BatchStyleCost``'s)."""
        terms = self.terms
        if content_target is not None:
            terms = [self._content_term(content_target) if term.name == "content" else term for term in terms]
        sums = [term.sums(activations, Window()) for term in terms if term.layers]
        shapes = Shapes(_spatial(image), lambda layer: _spatial(activations[layer]))
        return self._combined(image, sums, shapes, terms)

    def _content_term(self, target):
        config = self.config
        return ContentTerm(self.content_layer, target, config.alpha, config.content_normalizer, self._content_mask)

    def _combined(self, image, sums, shapes, terms=None):
        """``{"total": J, term name: value}`` from each network term's ``sums`` (in ``terms`` order): a value is the
        term's ``cost`` of its sums (an image term's, of the image); ``J = sum weight * value``."""
        values, J = {}, None
        sums = iter(sums)
        for term in self.terms if terms is None else terms:
            value = term.cost(next(sums), shapes) if term.layers else term.image_cost(image)
            values[term.name] = value
            weighted = _weighted(term.weight, value)
            J = weighted if J is None else J + weighted
        return {"total": J, **values}

    def constrain(self, image):
        """After each optimizer step: with ``config.clip``, clips the ``image`` variable to the pixel range."""
        if self.config.clip:
            image.assign(tf.clip_by_value(image, *self._pixel_range))

    def value_and_gradient(self, image):
        """``(costs by name, dJ/dimage)``: all the loop calls, so a tiled objective overrides it."""
        with tf.GradientTape() as tape:
            tape.watch(image)
            costs = self(image)
        return costs, tape.gradient(costs["total"], image)

    def present(self, image):
        """``image`` as it is shown and saved: with ``preserve_colors="luminance"``, in the content's colours."""
        return present(self.config.preserve_colors, image, self.content_image)

    def deprocess(self, image):
        """``image`` as uint8 pixels (h, w, 3), for the objective's normalization."""
        return deprocess_image(self.present(image), self.config.normalization)


def _image_terms(terms):
    """``terms`` as a list, when each is an image term with a name of its own; ``NSTError`` otherwise."""
    terms = list(terms)
    if any(getattr(term, "layers", None) != () or not hasattr(term, "image_cost") for term in terms):
        raise NSTError("extra_terms must be image terms: objects with layers=() and image_cost(image)")
    names = ["total", "content", "style", "tv", *(getattr(term, "name", None) for term in terms)]
    if any(not isinstance(name, str) or names.count(name) > 1 for name in names):
        raise NSTError(
            f"each extra term needs a name of its own, not one of {', '.join(names[:4])}; got {names[4:]!r:.80}"
        )
    return terms


def _weighted(weight, value):
    # As costs.total_cost multiplies: the weight converted at the value's dtype.
    return tf.cast(tf.convert_to_tensor(weight, dtype_hint=value.dtype), value.dtype) * value


def _spatial(tensor):
    """(rows, columns) of a (1, rows, columns, channels) tensor, static where known."""
    static = tensor.shape[1:3]
    return tuple(s if s is not None else tf.shape(tensor)[1 + i] for i, s in enumerate(static))


def _in_precision(model, precision):
    if not callable(model):
        raise NSTError(f"model must be a VGG19 (or a callable with its interface); got {type(model).__name__}")
    dtype = compute_dtype(precision)
    return model if getattr(model, "dtype", tf.float32) == dtype else model.astype(dtype)
