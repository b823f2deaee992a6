"""Pure loss functions: tensors in, a loss (or the map a loss is built from) out.

One module per kind of term, shared by the methods that call down into them: ``segmentation``
(the supervised (Dice + CE) / 2), ``consistency`` (softmax MSE, sharpening, multi-decoder
agreement), ``uncertainty`` (UA-MT's entropy mask), ``pyramid`` (URPC), ``pseudo_label`` (CPS),
``copy_paste`` (BCP), ``class_correlation`` (CCL-Net's metric loss and soft labels). Nothing here
knows about configs, steps or the engine: schedules such as ramp-up weights stay with the
methods, so every function can be checked on hand-made tensors.
"""
