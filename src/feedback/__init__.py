"""Feedback mining: what reviews and return comments say, by product.

``themes`` and ``textgen`` write the synthetic world's text; ``embed`` turns text into
vectors (all-MiniLM-L6-v2 offline, TF-IDF as the baseline); ``discover`` clusters and
names themes; ``trends`` and ``alerts`` follow each theme's share by product and week;
``report`` writes the product team's HTML page; ``bench`` measures it all.
"""
