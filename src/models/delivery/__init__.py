"""Delivery-date model: a calibrated distribution of delivery days per parcel.

A discrete-time hazard network (PyTorch) over days 0..``d_max`` gives the whole
distribution of the calendar-day offset between order and delivery; a conformal
recalibration on a held-out period makes the stated on-time rates hold. From it come
the P50 date, a promise at any target on-time rate, P(on time | promise date) and, for
a parcel in transit, P(late).
"""
