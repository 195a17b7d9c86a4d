"""slfm.quantize"""
