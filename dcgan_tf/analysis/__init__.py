"""Layer 3, looking at a trained run: pictures of its samples and of z, loss plots, what D learnt.

- visualize: the --visualize options (grids, GIFs, walks and arithmetic in z)
- loss_log: a run's losses.csv read as arrays, and the series maths of its plots (no matplotlib)
- plots: one run's plots (losses, log G/D ratio or score gap, evaluations), and the figure helpers
- compare: several runs side by side (--compare's curves and grids, a sweep's curves)
- d_features: D's filters' favourite images and their guided-backpropagation maps
- projection: the z whose G(z) looks like a real image (--z_files)
- augment_preview: training images as D sees them under --augment
- probe: the linear probe of D's features on labelled real images (--probe)
- forget: G's filters that draw what boxes mark, found and dropped (--visualize_option forget)
"""
