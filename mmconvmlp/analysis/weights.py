"""Non-trivial weights for models that are measured or compared without a
checkpoint: the benchmarks' models and the tests' share one helper."""
import torch


def spread_weights(model, seed=0, heads_std=None):
    """Give ``model`` (in place) weights whose outputs spread.

    Every batch norm gets random running statistics and affine parameters
    (so eval-mode comparisons exercise them); with ``heads_std``, the 4-d
    (convolution) weights of parameters named ``*head*`` are redrawn from
    N(0, heads_std), so that detectors' scores spread and detections exist.
    Returns the model.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
        if heads_std is not None:
            for name, param in model.named_parameters():
                if 'head' in name and param.dim() == 4:
                    param.normal_(0, heads_std, generator=gen)
    return model
