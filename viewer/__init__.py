"""`apigen-mt view` and `apigen-mt stats`: look at the data before training on it.

The viewer reads everything the toolkit writes (datagen runs, exported datasets, τ and BFCL
evaluations), so it sits above the three packages: it imports ``datagen`` (run files, quality
figures), ``evaluation`` (pass^k, BFCL data and result files) and ``training.convert`` (the one
reader of the dataset layouts). Nothing imports it. The site it writes is static: no server, no
network; its script and style ship in this package.
"""
