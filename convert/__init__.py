"""slfm.convert"""
