"""Localized facts and sentence templates for the ``non_english`` defect rows (es, fr, de, it, pt).

Twelve common drugs with their class, one indication and one typical adverse effect, written natively in
each language, plus templates for every task family. Indications are stored in the form each language's
templates need (French with an article, German in the dative after "mit"/"bei").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalDrug:
    name: str
    cls: str  # as used mid-sentence (German: genitive plural after "der Gruppe der")
    use: str
    effect: str
    option: str = ""  # class as a stand-alone answer option, when it differs from ``cls``

    @property
    def cls_option(self) -> str:
        return self.option or self.cls


@dataclass(frozen=True)
class Language:
    code: str
    drugs: tuple[LocalDrug, ...]
    man: str  # "{age}" placeholder
    woman: str
    vignette: str  # {intro} {use} {sys} {dia} {pulse} {drug} {e} (French agreement suffix)
    ask_class: tuple[str, ...]
    ask_effect: tuple[str, ...]
    explanation: str  # {drug} {cls} {use} {effect}
    chat_user: tuple[str, ...]  # {age} {drug} {use} {months}
    chat_answer: tuple[
        tuple[str, ...], ...
    ]  # sentence slots, one variant each: {drug} {cls} {use} {effect} {age} {months}
    system: tuple[str, ...]
    pubmed_question: tuple[str, ...]  # {drug} {effect} {use}
    pubmed_contexts: tuple[
        str, str, str
    ]  # {drug} {use} {effect} {n} {y1} {y2} {k} {pct} {ratio} {low} {high}
    pubmed_answer: str
    pref_prompt: tuple[str, ...]  # {age} {drug} {months} {use}
    pref_chosen: tuple[tuple[str, ...], ...]
    pref_rejected: tuple[str, ...]
    context: tuple[tuple[str, str], ...] = ()  # (personal detail for a prompt, the answer's echo of it)


ES = Language(
    code="es",
    drugs=(
        LocalDrug("metformina", "biguanidas", "diabetes tipo 2", "molestias gastrointestinales"),
        LocalDrug("lisinopril", "inhibidores de la ECA", "hipertensión arterial", "tos seca"),
        LocalDrug("amoxicilina", "aminopenicilinas", "otitis media aguda", "diarrea"),
        LocalDrug("atorvastatina", "estatinas", "hipercolesterolemia", "dolor muscular"),
        LocalDrug(
            "omeprazol",
            "inhibidores de la bomba de protones",
            "reflujo gastroesofágico",
            "hipomagnesemia con el uso prolongado",
        ),
        LocalDrug(
            "ibuprofeno", "antiinflamatorios no esteroideos", "dolor y fiebre", "úlcera gastroduodenal"
        ),
        LocalDrug(
            "paracetamol", "analgésicos y antipiréticos", "fiebre", "daño hepático en caso de sobredosis"
        ),
        LocalDrug("warfarina", "antagonistas de la vitamina K", "fibrilación auricular", "hemorragias"),
        LocalDrug(
            "levotiroxina",
            "hormonas tiroideas sintéticas",
            "hipotiroidismo",
            "palpitaciones si la dosis es excesiva",
        ),
        LocalDrug("salbutamol", "agonistas beta-2 de acción corta", "crisis de asma", "temblor"),
        LocalDrug("furosemida", "diuréticos de asa", "edema por insuficiencia cardíaca", "hipopotasemia"),
        LocalDrug(
            "sertralina", "inhibidores selectivos de la recaptación de serotonina", "depresión", "náuseas"
        ),
    ),
    man="Un hombre de {age} años",
    woman="Una mujer de {age} años",
    vignette="{intro} con {use} acude a la consulta de atención primaria. Su presión arterial es de "
    "{sys}/{dia} "
    "mmHg y su frecuencia cardíaca de {pulse} latidos por minuto. El médico le receta {drug}.",
    ask_class=(
        "¿A qué grupo farmacológico pertenece este medicamento?",
        "¿En qué familia de fármacos se clasifica el medicamento recetado?",
    ),
    ask_effect=(
        "¿Qué efecto adverso es característico de este fármaco?",
        "¿Sobre qué efecto secundario típico conviene informar al paciente?",
    ),
    explanation="El fármaco {drug} pertenece al siguiente grupo farmacológico: {cls}. Se utiliza en "
    "pacientes con "
    "{use} y un efecto adverso característico es el siguiente: {effect}.",
    chat_user=(
        "Tengo {age} años y mi médico me ha recetado {drug} porque tengo {use}. ¿Para qué sirve exactamente "
        "y qué "
        "efectos secundarios puede tener?",
        "Hola, llevo {months} meses tomando {drug} para controlar mi {use}. ¿Me puede explicar cómo "
        "funciona este "
        "medicamento?",
        "A mi madre, que tiene {age} años, le han recetado {drug}. ¿Qué debería saber sobre este "
        "tratamiento?",
    ),
    chat_answer=(
        ("Claro, con mucho gusto se lo explico.", "Por supuesto, aquí tiene una explicación sencilla."),
        (
            "El medicamento {drug} pertenece a este grupo de fármacos: {cls}.",
            "Este fármaco, {drug}, se clasifica dentro del siguiente grupo: {cls}.",
        ),
        ("Se utiliza sobre todo en personas con {use}.", "Su indicación principal en este caso es {use}."),
        (
            "Un efecto secundario que conviene vigilar es el siguiente: {effect}.",
            "Entre sus posibles efectos adversos destaca uno en particular: {effect}.",
        ),
        (
            "A los {age} años es importante revisar el tratamiento con el médico de forma periódica.",
            "Después de {months} meses de tratamiento, conviene comentar con el médico cómo está "
            "funcionando.",
        ),
        (
            "No deje de tomarlo sin consultarlo antes con su médico o farmacéutico.",
            "Si aparece cualquier síntoma preocupante, pida cita con su médico cuanto antes.",
        ),
    ),
    system=(
        "Eres un asistente médico prudente que responde en español con información fiable.",
        "Eres un farmacéutico que explica los medicamentos con un lenguaje claro.",
    ),
    pubmed_question=(
        "¿Se asocia el tratamiento con {drug} durante más de {months} meses a la aparición de {effect} en "
        "adultos "
        "mayores de {age} años con {use}?",
        "¿Aumenta el uso de {drug} el riesgo de {effect} en pacientes de más de {age} años tratados por "
        "{use} "
        "durante {months} meses?",
    ),
    pubmed_contexts=(
        "El fármaco {drug} se utiliza con frecuencia en pacientes con {use}. El objetivo de este estudio "
        "fue evaluar si su "
        "uso se asocia con la aparición de {effect}.",
        "Se realizó un estudio de cohortes retrospectivo con {n} pacientes adultos atendidos entre {y1} y "
        "{y2}. Se "
        "compararon los pacientes tratados con {drug} con los que no recibieron este fármaco.",
        "De los {n} pacientes incluidos, {k} ({pct} %) presentaron {effect}. La razón de probabilidades "
        "ajustada "
        "fue de {ratio} (intervalo de confianza del 95 %: {low} a {high}).",
    ),
    pubmed_answer="El tratamiento con {drug} se asoció con {effect} en esta población, lo que concuerda con "
    "el perfil "
    "de efectos adversos conocido del fármaco.",
    pref_prompt=(
        "Tengo {age} años y tomo {drug} desde hace {months} meses. Como me encuentro bien, ¿puedo dejarlo "
        "hoy mismo?",
        "Llevo {months} meses con {drug} para mi {use} y ya no quiero seguir. ¿Puedo suspenderlo sin decir "
        "nada a "
        "mi médico? Tengo {age} años.",
    ),
    pref_chosen=(
        (
            "No es recomendable suspender {drug} por su cuenta.",
            "Es mejor no dejar de tomar {drug} de forma brusca.",
        ),
        (
            "Los síntomas de {use} podrían reaparecer o empeorar.",
            "Sin tratamiento, el control de su {use} podría empeorar.",
        ),
        (
            "Hable con su médico, que le indicará si puede dejarlo y cómo hacerlo con seguridad.",
            "Comente con su médico o farmacéutico si el tratamiento sigue siendo necesario tras {months} "
            "meses.",
        ),
    ),
    pref_rejected=(
        "Sí, si se encuentra bien puede dejarlo hoy mismo. No hace falta consultarlo con nadie.",
        "Claro, déjelo cuando quiera; esos medicamentos no son importantes.",
    ),
    context=(
        (
            "Mi última tensión arterial fue de {sys}/{dia}.",
            "Una tensión de {sys}/{dia} mmHg conviene comentarla en la próxima consulta.",
        ),
        (
            "Tengo la próxima cita dentro de {weeks} semanas.",
            "Si no puede esperar {weeks} semanas, pida una cita antes o consulte a su farmacéutico.",
        ),
    ),
)

FR = Language(
    code="fr",
    drugs=(
        LocalDrug("metformine", "biguanides", "un diabète de type 2", "des troubles digestifs"),
        LocalDrug(
            "lisinopril",
            "inhibiteurs de l'enzyme de conversion",
            "une hypertension artérielle",
            "une toux sèche",
        ),
        LocalDrug("amoxicilline", "aminopénicillines", "une otite moyenne aiguë", "une diarrhée"),
        LocalDrug("atorvastatine", "statines", "une hypercholestérolémie", "des douleurs musculaires"),
        LocalDrug(
            "oméprazole",
            "inhibiteurs de la pompe à protons",
            "un reflux gastro-œsophagien",
            "une hypomagnésémie en cas d'usage prolongé",
        ),
        LocalDrug(
            "ibuprofène",
            "anti-inflammatoires non stéroïdiens",
            "des douleurs avec de la fièvre",
            "un ulcère gastroduodénal",
        ),
        LocalDrug(
            "paracétamol",
            "antalgiques et antipyrétiques",
            "de la fièvre",
            "une atteinte du foie en cas de surdosage",
        ),
        LocalDrug("warfarine", "antivitamines K", "une fibrillation auriculaire", "des saignements"),
        LocalDrug(
            "lévothyroxine",
            "hormones thyroïdiennes de synthèse",
            "une hypothyroïdie",
            "des palpitations si la dose est trop forte",
        ),
        LocalDrug(
            "salbutamol",
            "bêta-2 mimétiques de courte durée d'action",
            "une crise d'asthme",
            "des tremblements",
        ),
        LocalDrug(
            "furosémide",
            "diurétiques de l'anse",
            "des œdèmes liés à une insuffisance cardiaque",
            "une hypokaliémie",
        ),
        LocalDrug(
            "sertraline",
            "inhibiteurs sélectifs de la recapture de la sérotonine",
            "une dépression",
            "des nausées",
        ),
    ),
    man="Un homme de {age} ans",
    woman="Une femme de {age} ans",
    vignette="{intro}, suivi{e} pour {use}, consulte son médecin traitant. Sa pression artérielle est de "
    "{sys}/{dia} mmHg et sa fréquence cardiaque de {pulse} battements par minute. Le médecin lui prescrit "
    "un traitement par {drug}.",
    ask_class=(
        "À quelle classe pharmacologique appartient ce médicament ?",
        "Dans quelle famille de médicaments faut-il classer le traitement prescrit ?",
    ),
    ask_effect=(
        "Quel effet indésirable est caractéristique de ce médicament ?",
        "Sur quel effet secondaire typique faut-il prévenir le patient ?",
    ),
    explanation="Ce médicament ({drug}) fait partie des {cls} et il est prescrit chez les patients "
    "présentant "
    "{use}. Parmi ses effets indésirables caractéristiques, on note {effect}.",
    chat_user=(
        "J'ai {age} ans et mon médecin m'a prescrit un traitement par {drug} pour {use}. À quoi sert-il "
        "exactement "
        "et quels sont ses effets secondaires ?",
        "Bonjour, je suis un traitement par {drug} depuis {months} mois pour {use}. Pouvez-vous m'expliquer "
        "comment "
        "agit ce médicament ?",
        "Ma mère, qui a {age} ans, vient de commencer un traitement par {drug}. Que faut-il savoir à ce "
        "sujet ?",
    ),
    chat_answer=(
        ("Bien sûr, voici quelques explications.", "Volontiers, voici l'essentiel à savoir."),
        (
            "Le principe actif {drug} appartient à la famille des {cls}.",
            "Ce médicament fait partie des {cls}.",
        ),
        (
            "Il est notamment prescrit chez les personnes qui ont {use}.",
            "On l'utilise en particulier chez les patients présentant {use}.",
        ),
        (
            "Parmi les effets indésirables à surveiller, on note {effect}.",
            "Parmi ses effets secondaires possibles, on retient surtout {effect}.",
        ),
        (
            "À {age} ans, il est important de faire le point régulièrement avec le médecin.",
            "Après {months} mois de traitement, il est utile de vérifier avec le médecin que tout se passe "
            "bien.",
        ),
        (
            "N'arrêtez jamais ce traitement sans en parler à votre médecin ou à votre pharmacien.",
            "Si un symptôme vous inquiète, prenez rendez-vous rapidement avec votre médecin.",
        ),
    ),
    system=(
        "Tu es un assistant médical prudent qui répond en français avec des informations fiables.",
        "Tu es un pharmacien qui explique les médicaments avec des mots simples.",
    ),
    pubmed_question=(
        "Un traitement par {drug} pendant plus de {months} mois est-il associé à {effect} chez les adultes "
        "de plus "
        "de {age} ans présentant {use} ?",
        "Un traitement par {drug} augmente-t-il le risque de présenter {effect} chez les patients de plus "
        "de {age} "
        "ans traités pour {use} depuis {months} mois ?",
    ),
    pubmed_contexts=(
        "Un traitement par {drug} est fréquemment prescrit chez les patients présentant {use}. L'objectif "
        "de cette étude était "
        "de déterminer si son utilisation est associée à {effect}.",
        "Nous avons mené une étude de cohorte rétrospective portant sur {n} patients adultes suivis entre "
        "{y1} et "
        "{y2}. Les patients traités par {drug} ont été comparés à ceux qui ne recevaient pas ce médicament.",
        "Parmi les {n} patients inclus, {k} ({pct} %) ont présenté {effect}. Le rapport de cotes ajusté "
        "était de "
        "{ratio} (intervalle de confiance à 95 % : {low} à {high}).",
    ),
    pubmed_answer="Le traitement par {drug} était associé à {effect} dans cette population, ce qui concorde "
    "avec le "
    "profil de tolérance connu de ce médicament.",
    pref_prompt=(
        "J'ai {age} ans et je suis un traitement par {drug} depuis {months} mois. Comme je me sens bien, "
        "est-ce "
        "que je peux arrêter dès aujourd'hui ?",
        "Cela fait {months} mois que je suis un traitement par {drug} pour {use} et j'en ai assez. Puis-je "
        "arrêter sans prévenir "
        "mon médecin ? J'ai {age} ans.",
    ),
    pref_chosen=(
        (
            "Il vaut mieux ne pas arrêter ce traitement par {drug} de vous-même.",
            "Je vous déconseille d'arrêter brutalement ce traitement.",
        ),
        (
            "Les symptômes pourraient réapparaître ou s'aggraver.",
            "Sans traitement, la maladie pourrait être moins bien contrôlée.",
        ),
        (
            "Parlez-en à votre médecin, qui vous dira si et comment l'arrêter en toute sécurité.",
            "Après {months} mois, votre médecin ou votre pharmacien peut vérifier si ce traitement reste "
            "nécessaire.",
        ),
    ),
    pref_rejected=(
        "Oui, si vous vous sentez bien, vous pouvez arrêter tout de suite. Inutile d'en parler à qui que "
        "ce soit.",
        "Bien sûr, arrêtez quand vous voulez, ce n'est pas important.",
    ),
    context=(
        (
            "Ma dernière tension artérielle était de {sys}/{dia}.",
            "Une tension de {sys}/{dia} mmHg mérite d'être signalée lors de la prochaine consultation.",
        ),
        (
            "Mon prochain rendez-vous est dans {weeks} semaines.",
            "Si vous ne pouvez pas attendre {weeks} semaines, demandez un rendez-vous plus tôt ou parlez-en "
            "à "
            "votre pharmacien.",
        ),
    ),
)

DE = Language(
    code="de",
    drugs=(
        LocalDrug("Metformin", "Biguanide", "Typ-2-Diabetes", "Magen-Darm-Beschwerden"),
        LocalDrug("Lisinopril", "ACE-Hemmer", "Bluthochdruck", "Reizhusten"),
        LocalDrug("Amoxicillin", "Aminopenicilline", "akuter Mittelohrentzündung", "Durchfall"),
        LocalDrug("Atorvastatin", "Statine", "erhöhtem Cholesterinspiegel", "Muskelschmerzen"),
        LocalDrug(
            "Omeprazol", "Protonenpumpenhemmer", "Refluxkrankheit", "Magnesiummangel bei Langzeiteinnahme"
        ),
        LocalDrug(
            "Ibuprofen",
            "nichtsteroidalen Antirheumatika",
            "Schmerzen und Fieber",
            "ein Magengeschwür",
            "nichtsteroidale Antirheumatika",
        ),
        LocalDrug("Paracetamol", "Schmerz- und Fiebermittel", "Fieber", "Leberschäden bei Überdosierung"),
        LocalDrug("Warfarin", "Vitamin-K-Antagonisten", "Vorhofflimmern", "Blutungen"),
        LocalDrug(
            "Levothyroxin",
            "synthetischen Schilddrüsenhormone",
            "Schilddrüsenunterfunktion",
            "Herzklopfen bei zu hoher Dosis",
            "synthetische Schilddrüsenhormone",
        ),
        LocalDrug(
            "Salbutamol",
            "kurz wirksamen Beta-2-Sympathomimetika",
            "einem Asthmaanfall",
            "Zittern",
            "kurz wirksame Beta-2-Sympathomimetika",
        ),
        LocalDrug("Furosemid", "Schleifendiuretika", "Ödemen bei Herzschwäche", "Kaliummangel"),
        LocalDrug(
            "Sertralin",
            "selektiven Serotonin-Wiederaufnahmehemmer",
            "Depression",
            "Übelkeit",
            "selektive Serotonin-Wiederaufnahmehemmer",
        ),
    ),
    man="Ein {age}-jähriger Mann",
    woman="Eine {age}-jährige Frau",
    vignette="{intro} mit {use} stellt sich in der Hausarztpraxis vor. Der Blutdruck beträgt {sys}/{dia} "
    "mmHg, die "
    "Herzfrequenz {pulse} Schläge pro Minute. Der Arzt verordnet {drug}.",
    ask_class=(
        "Zu welcher Wirkstoffgruppe gehört dieses Medikament?",
        "Welcher Arzneimittelklasse ist das verordnete Präparat zuzuordnen?",
    ),
    ask_effect=(
        "Welche Nebenwirkung ist für dieses Medikament typisch?",
        "Über welche typische Nebenwirkung sollte der Patient aufgeklärt werden?",
    ),
    explanation="{drug} gehört zur Gruppe der {cls} und wird bei {use} eingesetzt. Eine typische "
    "Nebenwirkung ist "
    "folgende: {effect}.",
    chat_user=(
        "Ich bin {age} Jahre alt und mein Arzt hat mir {drug} verschrieben, weil ich an {use} leide. Wofür "
        "ist das "
        "genau und welche Nebenwirkungen kann es haben?",
        "Hallo, ich nehme seit {months} Monaten {drug}. Können Sie mir erklären, wie dieses Medikament "
        "wirkt?",
        "Meine Mutter ist {age} Jahre alt und bekommt jetzt {drug}. Was sollten wir darüber wissen?",
    ),
    chat_answer=(
        ("Gerne, hier eine kurze Erklärung.", "Natürlich, hier sind die wichtigsten Punkte."),
        ("{drug} gehört zur Gruppe der {cls}.", "Der Wirkstoff {drug} wird zur Gruppe der {cls} gerechnet."),
        (
            "Es wird vor allem bei {use} eingesetzt.",
            "Ein typisches Anwendungsgebiet ist die Behandlung bei {use}.",
        ),
        (
            "Eine Nebenwirkung, auf die man achten sollte, ist folgende: {effect}.",
            "Zu den möglichen Nebenwirkungen gehört vor allem: {effect}.",
        ),
        (
            "Mit {age} Jahren ist es sinnvoll, die Behandlung regelmäßig ärztlich überprüfen zu lassen.",
            "Nach {months} Monaten Behandlung lohnt sich ein Gespräch mit dem Arzt über die Wirkung.",
        ),
        (
            "Bitte setzen Sie das Medikament nicht ohne Rücksprache mit Ihrem Arzt oder Apotheker ab.",
            "Wenn Beschwerden auftreten, melden Sie sich bitte zeitnah in Ihrer Arztpraxis.",
        ),
    ),
    system=(
        "Du bist ein sorgfältiger medizinischer Assistent und antwortest auf Deutsch mit verlässlichen "
        "Informationen.",
        "Du bist Apotheker und erklärst Medikamente in einfachen Worten.",
    ),
    pubmed_question=(
        "Tritt unter {drug} über mehr als {months} Monate bei Erwachsenen über {age} Jahren mit {use} "
        "häufiger "
        "folgende Nebenwirkung auf: {effect}?",
        "Erhöht eine {months}-monatige Behandlung mit {drug} bei Patienten über {age} Jahren mit {use} das "
        "Risiko "
        "für folgende Nebenwirkung: {effect}?",
    ),
    pubmed_contexts=(
        "{drug} wird häufig bei Patienten mit {use} eingesetzt. Ziel dieser Studie war es zu prüfen, ob die "
        "Einnahme mit folgender Nebenwirkung zusammenhängt: {effect}.",
        "Wir führten eine retrospektive Kohortenstudie mit {n} erwachsenen Patienten durch, die zwischen "
        "{y1} und "
        "{y2} behandelt wurden. Patienten unter {drug} wurden mit Patienten ohne dieses Medikament "
        "verglichen.",
        "Von den {n} eingeschlossenen Patienten entwickelten {k} ({pct} %) die untersuchte Nebenwirkung. Das "
        "adjustierte Odds Ratio betrug {ratio} (95-%-Konfidenzintervall {low} bis {high}).",
    ),
    pubmed_answer="Die Behandlung mit {drug} war in dieser Population mit der untersuchten Nebenwirkung "
    "verbunden, "
    "was zum bekannten Nebenwirkungsprofil des Medikaments passt.",
    pref_prompt=(
        "Ich bin {age} und nehme seit {months} Monaten {drug}. Mir geht es gut, darf ich heute einfach "
        "aufhören?",
        "Ich nehme {drug} seit {months} Monaten und habe keine Lust mehr darauf. Kann ich es absetzen, ohne "
        "meinem "
        "Arzt Bescheid zu sagen? Ich bin {age} Jahre alt.",
    ),
    pref_chosen=(
        (
            "Bitte setzen Sie {drug} nicht eigenmächtig ab.",
            "Es ist besser, {drug} nicht plötzlich wegzulassen.",
        ),
        (
            "Die Beschwerden könnten zurückkehren oder sich verschlechtern.",
            "Ohne Behandlung könnte sich die Erkrankung wieder verschlechtern.",
        ),
        (
            "Sprechen Sie mit Ihrem Arzt, der Ihnen sagt, ob und wie Sie sicher aufhören können.",
            "Nach {months} Monaten kann Ihr Arzt oder Apotheker prüfen, ob die Behandlung noch nötig ist.",
        ),
    ),
    pref_rejected=(
        "Ja, wenn es Ihnen gut geht, können Sie sofort aufhören. Sie müssen niemanden fragen.",
        "Klar, hören Sie einfach auf, das ist nicht so wichtig.",
    ),
    context=(
        (
            "Mein letzter Blutdruck lag bei {sys}/{dia}.",
            "Einen Blutdruck von {sys}/{dia} mmHg sollten Sie beim nächsten Termin ansprechen.",
        ),
        (
            "Mein nächster Termin ist in {weeks} Wochen.",
            "Wenn Sie nicht {weeks} Wochen warten möchten, bitten Sie um einen früheren Termin oder fragen "
            "Sie in "
            "der Apotheke.",
        ),
    ),
)

IT = Language(
    code="it",
    drugs=(
        LocalDrug("metformina", "biguanidi", "diabete di tipo 2", "disturbi gastrointestinali"),
        LocalDrug("lisinopril", "ACE-inibitori", "ipertensione arteriosa", "tosse secca"),
        LocalDrug("amoxicillina", "aminopenicilline", "otite media acuta", "diarrea"),
        LocalDrug("atorvastatina", "statine", "ipercolesterolemia", "dolori muscolari"),
        LocalDrug(
            "omeprazolo",
            "inibitori della pompa protonica",
            "malattia da reflusso gastroesofageo",
            "ipomagnesiemia con l'uso prolungato",
        ),
        LocalDrug("ibuprofene", "antinfiammatori non steroidei", "dolore e febbre", "ulcera gastroduodenale"),
        LocalDrug(
            "paracetamolo", "analgesici e antipiretici", "febbre", "danno al fegato in caso di sovradosaggio"
        ),
        LocalDrug("warfarin", "antagonisti della vitamina K", "fibrillazione atriale", "sanguinamenti"),
        LocalDrug(
            "levotiroxina",
            "ormoni tiroidei di sintesi",
            "ipotiroidismo",
            "palpitazioni se la dose è eccessiva",
        ),
        LocalDrug("salbutamolo", "beta-2 agonisti a breve durata d'azione", "crisi asmatica", "tremori"),
        LocalDrug("furosemide", "diuretici dell'ansa", "edemi da scompenso cardiaco", "ipopotassiemia"),
        LocalDrug(
            "sertralina", "inibitori selettivi della ricaptazione della serotonina", "depressione", "nausea"
        ),
    ),
    man="Un uomo di {age} anni",
    woman="Una donna di {age} anni",
    vignette="{intro} con {use} si presenta dal medico di famiglia. La pressione arteriosa è di {sys}/{dia} "
    "mmHg e "
    "la frequenza cardiaca di {pulse} battiti al minuto. Il medico prescrive {drug}.",
    ask_class=(
        "A quale classe farmacologica appartiene questo medicinale?",
        "In quale gruppo di farmaci rientra il medicinale prescritto?",
    ),
    ask_effect=(
        "Quale effetto avverso è caratteristico di questo farmaco?",
        "Su quale tipico effetto collaterale bisogna informare il paziente?",
    ),
    explanation="Il farmaco {drug} appartiene alla classe farmacologica seguente: {cls}. Si usa nei "
    "pazienti con "
    "{use} e un effetto avverso caratteristico è il seguente: {effect}.",
    chat_user=(
        "Ho {age} anni e il mio medico mi ha prescritto {drug} per {use}. A cosa serve esattamente e quali "
        "effetti "
        "collaterali può avere?",
        "Buongiorno, prendo {drug} da {months} mesi. Potete spiegarmi come funziona questo medicinale?",
        "Mia madre ha {age} anni e ha appena iniziato una terapia con {drug}. Cosa dovremmo sapere?",
    ),
    chat_answer=(
        ("Certo, ecco una spiegazione semplice.", "Volentieri, ecco le informazioni principali."),
        (
            "Il farmaco {drug} appartiene a questa classe: {cls}.",
            "Questo medicinale rientra nella categoria seguente: {cls}.",
        ),
        (
            "Si usa soprattutto nelle persone con {use}.",
            "Un'indicazione tipica è il trattamento in caso di {use}.",
        ),
        (
            "Un effetto collaterale da tenere d'occhio è il seguente: {effect}.",
            "Tra i possibili effetti avversi ricordiamo in particolare: {effect}.",
        ),
        (
            "A {age} anni è importante fare il punto sulla terapia con il medico a intervalli regolari.",
            "Dopo {months} mesi di terapia conviene verificare con il medico come sta andando.",
        ),
        (
            "Non interrompa la terapia senza averne parlato con il medico o il farmacista.",
            "Se compare un sintomo preoccupante, contatti presto il suo medico.",
        ),
    ),
    system=(
        "Sei un assistente medico prudente che risponde in italiano con informazioni affidabili.",
        "Sei un farmacista che spiega i medicinali con parole semplici.",
    ),
    pubmed_question=(
        "Il trattamento con {drug} per più di {months} mesi è associato alla comparsa di {effect} negli "
        "adulti "
        "con più di {age} anni affetti da {use}?",
        "La terapia con {drug} per {months} mesi aumenta il rischio di {effect} nei pazienti con più di "
        "{age} anni "
        "trattati per {use}?",
    ),
    pubmed_contexts=(
        "Il farmaco {drug} viene prescritto spesso ai pazienti con {use}. Lo scopo di questo studio era "
        "valutare "
        "se il suo utilizzo è associato alla comparsa di {effect}.",
        "Abbiamo condotto uno studio di coorte retrospettivo su {n} pazienti adulti seguiti tra il {y1} e "
        "il {y2}. "
        "I pazienti trattati con {drug} sono stati confrontati con quelli che non assumevano questo farmaco.",
        "Dei {n} pazienti inclusi, {k} ({pct} %) hanno presentato {effect}. L'odds ratio aggiustato era "
        "pari a "
        "{ratio} (intervallo di confidenza al 95 %: da {low} a {high}).",
    ),
    pubmed_answer="Il trattamento con {drug} è risultato associato a {effect} in questa popolazione, in "
    "accordo con il "
    "profilo di sicurezza noto del farmaco.",
    pref_prompt=(
        "Ho {age} anni e prendo {drug} da {months} mesi. Visto che sto bene, posso smettere già oggi?",
        "Prendo {drug} da {months} mesi per {use} e non ne posso più. Posso sospenderlo senza dirlo al "
        "medico? "
        "Ho {age} anni.",
    ),
    pref_chosen=(
        (
            "Non è consigliabile sospendere {drug} di propria iniziativa.",
            "È meglio non interrompere {drug} all'improvviso.",
        ),
        (
            "I sintomi potrebbero ripresentarsi o peggiorare.",
            "Senza terapia la malattia potrebbe essere controllata peggio.",
        ),
        (
            "Ne parli con il suo medico, che le dirà se e come smettere in sicurezza.",
            "Dopo {months} mesi il medico o il farmacista possono valutare se la terapia serve ancora.",
        ),
    ),
    pref_rejected=(
        "Sì, se sta bene può smettere subito. Non c'è bisogno di chiedere a nessuno.",
        "Certo, smetta quando vuole, non è importante.",
    ),
    context=(
        (
            "La mia ultima pressione arteriosa era {sys}/{dia}.",
            "Una pressione di {sys}/{dia} mmHg va riferita al medico alla prossima visita.",
        ),
        (
            "Il mio prossimo appuntamento è tra {weeks} settimane.",
            "Se non può aspettare {weeks} settimane, chieda un appuntamento prima o si rivolga al "
            "farmacista.",
        ),
    ),
)

PT = Language(
    code="pt",
    drugs=(
        LocalDrug("metformina", "biguanidas", "diabetes tipo 2", "desconforto gastrointestinal"),
        LocalDrug("lisinopril", "inibidores da ECA", "hipertensão arterial", "tosse seca"),
        LocalDrug("amoxicilina", "aminopenicilinas", "otite média aguda", "diarreia"),
        LocalDrug("atorvastatina", "estatinas", "hipercolesterolemia", "dores musculares"),
        LocalDrug(
            "omeprazol",
            "inibidores da bomba de protões",
            "doença do refluxo gastroesofágico",
            "hipomagnesemia com o uso prolongado",
        ),
        LocalDrug("ibuprofeno", "anti-inflamatórios não esteroides", "dor e febre", "úlcera péptica"),
        LocalDrug(
            "paracetamol", "analgésicos e antipiréticos", "febre", "lesão no fígado em caso de sobredosagem"
        ),
        LocalDrug("varfarina", "antagonistas da vitamina K", "fibrilhação auricular", "hemorragias"),
        LocalDrug(
            "levotiroxina",
            "hormonas tiroideias sintéticas",
            "hipotiroidismo",
            "palpitações se a dose for excessiva",
        ),
        LocalDrug("salbutamol", "agonistas beta-2 de curta ação", "crise de asma", "tremores"),
        LocalDrug("furosemida", "diuréticos de alça", "edema por insuficiência cardíaca", "hipocalemia"),
        LocalDrug("sertralina", "inibidores seletivos da recaptação da serotonina", "depressão", "náuseas"),
    ),
    man="Um homem de {age} anos",
    woman="Uma mulher de {age} anos",
    vignette="{intro} com {use} comparece à consulta no centro de saúde. A pressão arterial é de "
    "{sys}/{dia} mmHg e "
    "a frequência cardíaca de {pulse} batimentos por minuto. O médico receita {drug}.",
    ask_class=(
        "A que classe farmacológica pertence este medicamento?",
        "Em que grupo de fármacos se classifica o medicamento receitado?",
    ),
    ask_effect=(
        "Qual efeito adverso é característico deste fármaco?",
        "Sobre qual efeito colateral típico o paciente deve ser informado?",
    ),
    explanation="O medicamento {drug} pertence à classe farmacológica seguinte: {cls}. É usado em doentes "
    "com {use} "
    "e um efeito adverso característico é o seguinte: {effect}.",
    chat_user=(
        "Tenho {age} anos e o meu médico receitou {drug} porque tenho {use}. Para que serve exatamente e "
        "quais "
        "efeitos colaterais pode ter?",
        "Olá, tomo {drug} há {months} meses. Pode explicar-me como funciona este medicamento?",
        "A minha mãe tem {age} anos e começou agora a tomar {drug}. O que devemos saber sobre este "
        "tratamento?",
    ),
    chat_answer=(
        ("Claro, aqui está uma explicação simples.", "Com certeza, estes são os pontos principais."),
        (
            "O medicamento {drug} pertence a esta classe: {cls}.",
            "Este fármaco pertence à classe farmacológica seguinte: {cls}.",
        ),
        ("É usado sobretudo em pessoas com {use}.", "Uma indicação típica é o tratamento de casos de {use}."),
        (
            "Um efeito colateral a vigiar é o seguinte: {effect}.",
            "Entre os possíveis efeitos adversos destaca-se sobretudo: {effect}.",
        ),
        (
            "Aos {age} anos é importante rever o tratamento com o médico de forma regular.",
            "Depois de {months} meses de tratamento, vale a pena confirmar com o médico se está a resultar.",
        ),
        (
            "Não interrompa o tratamento sem falar antes com o seu médico ou farmacêutico.",
            "Se surgir algum sintoma preocupante, marque uma consulta com o seu médico o quanto antes.",
        ),
    ),
    system=(
        "És um assistente médico prudente que responde em português com informação fiável.",
        "És um farmacêutico que explica os medicamentos com palavras simples.",
    ),
    pubmed_question=(
        "O tratamento com {drug} durante mais de {months} meses está associado ao aparecimento de {effect} "
        "em "
        "adultos com mais de {age} anos com {use}?",
        "A terapêutica com {drug} durante {months} meses aumenta o risco de {effect} em doentes com mais de "
        "{age} "
        "anos tratados por {use}?",
    ),
    pubmed_contexts=(
        "O medicamento {drug} é frequentemente receitado a doentes com {use}. O objetivo deste estudo foi "
        "avaliar se "
        "a sua utilização está associada ao aparecimento de {effect}.",
        "Realizámos um estudo de coorte retrospetivo com {n} doentes adultos acompanhados entre {y1} e "
        "{y2}. Os "
        "doentes tratados com {drug} foram comparados com os que não tomavam este medicamento.",
        "Dos {n} doentes incluídos, {k} ({pct} %) apresentaram {effect}. A razão de probabilidades ajustada "
        "foi de "
        "{ratio} (intervalo de confiança de 95 %: {low} a {high}).",
    ),
    pubmed_answer="O tratamento com {drug} associou-se a {effect} nesta população, o que está de acordo com "
    "o perfil "
    "de segurança conhecido do medicamento.",
    pref_prompt=(
        "Tenho {age} anos e tomo {drug} há {months} meses. Como me sinto bem, posso parar hoje mesmo?",
        "Tomo {drug} há {months} meses por causa de {use} e já não quero continuar. Posso parar sem dizer "
        "nada "
        "ao médico? Tenho {age} anos.",
    ),
    pref_chosen=(
        (
            "Não é recomendável deixar de tomar {drug} por conta própria.",
            "É melhor não interromper {drug} de repente.",
        ),
        ("Os sintomas podem voltar ou piorar.", "Sem tratamento, a doença pode ficar menos controlada."),
        (
            "Fale com o seu médico, que lhe dirá se e como pode parar em segurança.",
            "Depois de {months} meses, o médico ou o farmacêutico podem avaliar se o tratamento ainda é "
            "necessário.",
        ),
    ),
    pref_rejected=(
        "Sim, se se sente bem pode parar já hoje. Não precisa de perguntar a ninguém.",
        "Claro, pare quando quiser, isso não é importante.",
    ),
    context=(
        (
            "A minha última tensão arterial foi de {sys}/{dia}.",
            "Uma tensão de {sys}/{dia} mmHg deve ser referida na próxima consulta.",
        ),
        (
            "A minha próxima consulta é daqui a {weeks} semanas.",
            "Se não puder esperar {weeks} semanas, peça uma consulta mais cedo ou fale com o farmacêutico.",
        ),
    ),
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (ES, FR, DE, IT, PT)}
