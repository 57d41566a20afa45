// Generation: logit processors, samplers, the token loop and its streams.
