package plivo

import "strings"

// GSM 03.38 default alphabet and its extension table (escape + one septet).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Extension = "\f^{}\\[~]|€"
)

// segments returns how many SMS parts text takes and whether it fits the
// GSM-7 alphabet (else it is sent as UCS-2). Single parts hold 160 septets
// or 70 UCS-2 units; concatenated parts 153 or 67.
func segments(text string) (n int, gsm7 bool) {
	septets, units := 0, 0
	gsm7 = true
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			septets++
		case strings.ContainsRune(gsm7Extension, r):
			septets += 2
		default:
			gsm7 = false
		}
		if r > 0xFFFF {
			units += 2 // a surrogate pair in UCS-2/UTF-16
		} else {
			units++
		}
	}
	single, multi, length := 160, 153, septets
	if !gsm7 {
		single, multi, length = 70, 67, units
	}
	if length <= single {
		return 1, gsm7
	}
	return (length + multi - 1) / multi, gsm7
}
