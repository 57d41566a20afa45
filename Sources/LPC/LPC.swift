// LPC: codebook, prior, posterior, latent head, losses, optimizer, trainer.
