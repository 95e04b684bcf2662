"""Model sources: a spec's ``model:`` block -> an ``nn.Module`` in eval mode."""
