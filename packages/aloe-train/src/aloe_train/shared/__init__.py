"""What the SFT and DPO recipes share: tokenizer handling and the prepared-data stream."""
