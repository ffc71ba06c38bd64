import QRCode from 'qrcode';

/**
 * A QR code of `text` as a PNG data URL, made here (no outside service ever sees an import link).
 * Error correction M and a 4-module quiet zone: what phone cameras read reliably off a screen.
 */
export function qrDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: 'M', margin: 4, scale: 6, type: 'image/png' });
}
