print("lpc")
