"""feedback: themes and sentiment in reviews and return comments, by product.

``config`` holds the hyper-parameters, ``train`` fitting, logging, registration and the
promotion gate, ``evaluate`` theme recovery and sentiment metrics, ``pyfunc`` the served
tagger, ``commands`` the CLI. The text mining itself lives in :mod:`ppx.feedback`.
"""
