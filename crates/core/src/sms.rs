//! SMS text: GSM-7 or UCS-2, and how many segments a text takes. (In progress.)
