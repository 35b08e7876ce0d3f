from secure_credentials import *
