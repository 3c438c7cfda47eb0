"""Feedback mining: what reviews and return comments say, by product.

``themes`` and ``textgen`` write the synthetic world's text; ``embed`` turns text into
vectors (all-MiniLM-L6-v2 and multilingual-e5-small offline, TF-IDF as the baseline);
``routing`` sends each text to the model of its language; ``discover`` clusters and
names themes; ``trends`` and ``alerts`` follow each theme's share by product and week;
``report`` writes the product team's HTML page; ``bench`` measures it all.
"""
